from .loop import RunResult, TrainConfig, evaluate, fit, inference_throughput

__all__ = ["TrainConfig", "RunResult", "fit", "evaluate", "inference_throughput"]
