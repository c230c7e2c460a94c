"""gunicorn's settings for every way Tanhui is served (gunicorn reads ./gunicorn.conf.py by itself):
the Procfile, docker-compose.yml and the image's command add only the address and process counts.

No request may hold a worker for long: the application bounds its own work (uploads are refused within a
few seconds, calls to Stripe have timeouts); these are the backstop when something still hangs.
"""

#: A worker silent for this long is killed and replaced (gthread: its main loop, not one busy request).
timeout = 30
#: After SIGTERM, in-flight requests get this long to finish; then the worker is killed, not waited for.
graceful_timeout = 10
#: Idle keep-alive connections are dropped quickly so they do not occupy a thread.
keepalive = 5
#: Request line and headers stay small (the largest we send are cookies and a bearer token).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
#: Replace each worker after a few thousand requests (with jitter), so a slow leak cannot grow for ever.
max_requests = 5000
max_requests_jitter = 500
