from .steps import RunResult, evaluate, inference_throughput
from .config import TrainConfig
from .loop import fit

__all__ = ["TrainConfig", "RunResult", "fit", "evaluate", "inference_throughput"]
