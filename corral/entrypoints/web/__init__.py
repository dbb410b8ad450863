"""The aiohttp web application: REST API, git smart HTTP, WebSocket, UI."""
