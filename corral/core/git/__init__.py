"""Git hosting: bare repositories behind the GitRepositories port, the browser, merges and push checks."""
