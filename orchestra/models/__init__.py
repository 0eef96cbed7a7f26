"""Models: the protocol and its implementations."""
from .base import (
    Block, Message, Model, ModelError, ModelRequest, ModelResponse, SystemBlock,
    TextBlock, ToolResultBlock, ToolSpec, ToolUseBlock, Usage,
    allow_model_requests, model_requests_allowed,
)
from .policy import FINAL_TOOL, Call, Final, PolicyContext, PolicyModel
from .replay import ReplayModel, request_hash
