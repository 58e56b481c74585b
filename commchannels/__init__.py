"""commchannels: environments and training code for communication channels between models.

Three settings (Lacaille 2018, arXiv 1904.09211): output exchange between supervised workers
(codistillation), a teacher that customises a student's training, and emergent language in
referential games. ``make(id)`` builds any registered environment.
"""

from commchannels.registry import REGISTRY, EnvSpec, make, register

__version__ = "0.1.0"

__all__ = ["REGISTRY", "EnvSpec", "__version__", "make", "register"]
