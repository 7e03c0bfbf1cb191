"""Registered models (``*_model.py``) and :func:`build_model`."""
from basicsr.utils.registry import MODEL_REGISTRY

__all__ = ['build_model']


def build_model(opt):
    """Builds the model named by ``opt['model_type']``.

    Args:
        opt (dict): Parsed options (not modified).

    Returns:
        BaseModel: The model.
    """
    model = MODEL_REGISTRY.get(opt['model_type'])(opt)
    model.logger.info(f'Model [{model.__class__.__name__}] is created.')
    return model
