"""Analyses: pure functions over a trained model and its data (DESIGN.md: analysis/).

`analyse_run` gathers every analysis of one stored run into plain data for the report.
"""

from .cost import flops_per_example, training_step_flops
from .metrics import calibration, confusion, least_confident, most_uncertain
from .neurons import feature_correlations, first_layer_weights, per_input_unit_max, text_features, top_activating, unit_activations
from .predict import has_dropout, mc_dropout_proba, predict_proba, predictive_entropy
from .span import gradient_profile, span_of, theoretical_receptive_field

__all__ = [
    "calibration",
    "confusion",
    "feature_correlations",
    "first_layer_weights",
    "flops_per_example",
    "training_step_flops",
    "gradient_profile",
    "has_dropout",
    "least_confident",
    "mc_dropout_proba",
    "most_uncertain",
    "per_input_unit_max",
    "predict_proba",
    "predictive_entropy",
    "span_of",
    "text_features",
    "theoretical_receptive_field",
    "top_activating",
    "unit_activations",
]
