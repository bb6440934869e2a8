"""What the server tells about itself: logging, counters and their histogram, the stats endpoint and Prometheus text."""
