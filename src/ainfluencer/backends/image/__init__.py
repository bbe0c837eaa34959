"""Image generation backends: ComfyUI, Automatic1111/Forge, in-process diffusers, OpenAI Images.

Services import from here or from ``registry``; torch and diffusers are never imported at module load.
"""

from ainfluencer.backends.image.base import (
    GeneratedImage,
    HttpImageBackend,
    ImageBackend,
    ImageRequest,
    Progress,
    ProgressCallback,
)
from ainfluencer.backends.image.errors import ContentRejected, MissingNodes
from ainfluencer.backends.image.registry import (
    IMAGE_BACKENDS,
    ImageFallbackChain,
    backend_class,
    create_image_backend,
    image_backend_status,
)

__all__ = [
    "IMAGE_BACKENDS",
    "ContentRejected",
    "GeneratedImage",
    "HttpImageBackend",
    "ImageBackend",
    "ImageFallbackChain",
    "ImageRequest",
    "MissingNodes",
    "Progress",
    "ProgressCallback",
    "backend_class",
    "create_image_backend",
    "image_backend_status",
]
