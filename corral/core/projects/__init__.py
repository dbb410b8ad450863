"""Projects and their collaboration objects: issues, comments, merge requests, reviews,
branch protections and webhooks. Repositories themselves live in ``corral.core.git``."""
