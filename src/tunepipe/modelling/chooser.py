"""The model chooser: the CNN for image data, the MLP for tables."""

from __future__ import annotations

from tunepipe.config import SearchSpace
from tunepipe.data.features import PreprocessingSpec
from tunepipe.modelling.hyperparameters import PipelineHyperModel
from tunepipe.modelling.image_model import ImageHyperModel
from tunepipe.modelling.model import TabularHyperModel


def hypermodel_for(spec: PreprocessingSpec, space: SearchSpace) -> PipelineHyperModel:
    """The hypermodel the specification calls for: :class:`ImageHyperModel` when it has an
    image feature, else :class:`TabularHyperModel`."""
    if spec.is_image:
        return ImageHyperModel(spec, space)
    return TabularHyperModel(spec, space)
