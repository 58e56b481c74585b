"""The teaching environment: a teacher directs the SGD training of a student classifier.

Importing this package (or just ``commchannels``) registers the Gymnasium id
``commchannels/Teaching-v0`` (see ``commchannels/registry.py``).
"""

from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import REWARDS, TeachingSettings
from commchannels.envs.teaching.task import TeachingTask, build_task

__all__ = ["REWARDS", "TeachingCore", "TeachingSettings", "TeachingTask", "build_task"]
