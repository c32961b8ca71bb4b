"""The CLI's exit codes: 0 success; 1 a run failed; 2 the request was refused; 3 a server is unreachable or
unavailable; 4 gave up waiting."""

EXIT_OK, EXIT_RUN_FAILED, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4
