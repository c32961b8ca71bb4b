"""One router per resource; main.py mounts them."""

# Routers carry the full prefix (not a parent router's), so a route's path is its whole template,
# which the request metrics use as a label.
API_PREFIX = "/api/v1"
