"""Amazon States Language: a pure interpreter (:mod:`.interpreter`) and a validator (:mod:`.validator`).

The interpreter never performs I/O: a runner feeds it events and applies the actions it returns.
"""

from kamado.pipelines.asl.errors import AslError
from kamado.pipelines.asl.interpreter import Interpreter, new_execution
from kamado.pipelines.asl.limits import AslLimits
from kamado.pipelines.asl.validator import validate_definition, validation_errors

__all__ = ["AslError", "AslLimits", "Interpreter", "new_execution", "validate_definition", "validation_errors"]
