"""Request body parsers: DRF's, with every unreadable JSON body a 400 `invalid_json`.

DRF's JSONParser turns a ValueError into a ParseError but lets RecursionError through, so a
body of 3000 `[` was a 500. DEFAULT_PARSER_CLASSES (core/settings.py) uses this one.
"""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from backend.errors import ErrorCode


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as error:
            raise ParseError(str(error.detail), code=ErrorCode.INVALID_JSON) from error
        except RecursionError as error:
            raise ParseError(
                "JSON parse error - nested too deeply.", code=ErrorCode.INVALID_JSON
            ) from error
