"""One locustfile per scenario; each checks the responses it gets, not just their speed."""
