"""stratacache's log lines through a user's Powertools ``Logger``.

stratacache logs with the standard library (logger ``stratacache``), one line
per event worth a human's attention. A function that logs with Powertools can
have those lines come out as its own structured JSON, with its keys (request
id, cold start, service) and level, the way Powertools does it for any library:
``copy_config_to_registered_loggers``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

LOGGER_NAME: Final = "stratacache"


def set_logger(logger: Logger) -> None:
    """Write stratacache's log lines with ``logger``'s handler, format and level.

    As Powertools' ``copy_config_to_registered_loggers`` does, the ``stratacache``
    logger stops propagating to the root logger, so each line is written once.

    Example:
        >>> from aws_lambda_powertools import Logger
        >>> set_logger(Logger(service="checkout"))  # doctest: +SKIP
    """
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    logging.getLogger(LOGGER_NAME)  # registered, so that Powertools finds it
    copy_config_to_registered_loggers(source_logger=logger, include={LOGGER_NAME})
