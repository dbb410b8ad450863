"""``corral`` as an API client: ``corral login URL``, then ``corral <resource> <verb>`` for every operation of the
server's OpenAPI document (see ``commands``). Server-side commands (serve, migrate, admin, ...) take precedence."""

from corral.entrypoints.client.commands import EXIT_CODES_HELP, client_main, is_client_resource

__all__ = ["EXIT_CODES_HELP", "client_main", "is_client_resource"]
