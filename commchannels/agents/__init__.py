"""Agents: bodies (features -> hidden), channels (hidden -> message), receivers, classifiers."""

from commchannels.agents.bodies import AttributeAttentionBody, CNNBody, MLPBody, SenderBody, make_body
from commchannels.agents.channels import (
    CELLS,
    METHODS,
    Channel,
    ContinuousChannel,
    GumbelChannel,
    Message,
    ReinforceChannel,
    make_channel,
    stopping_weights,
)
from commchannels.agents.classifiers import MLPClassifier
from commchannels.agents.receivers import AdditiveReader, MessageEncoder, Receiver, output_at, sample_guess
from commchannels.agents.senders import Sender, make_agents

__all__ = [
    "CELLS", "METHODS", "AdditiveReader", "AttributeAttentionBody", "CNNBody", "Channel", "ContinuousChannel",
    "GumbelChannel", "MLPBody", "MLPClassifier", "Message", "MessageEncoder", "Receiver", "ReinforceChannel",
    "Sender", "SenderBody", "make_agents", "make_body", "make_channel", "output_at", "sample_guess",
    "stopping_weights",
]
