"""gunicorn settings for Switchboard (gunicorn reads this file from the working directory).

Serve with `gunicorn 'app:create_app()'` (`make serve`). A command-line option overrides the
value here (in this gunicorn, GUNICORN_CMD_ARGS does not); the environment variables below
are read here.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Threads, not sync workers. A sync worker serves one connection at a time, start to end, so
# two clients that send their headers slowly (by accident or on purpose) made every webhook
# wait until the worker timeout killed them. A gthread worker parks idle connections in its
# event loop, and a connection that trickles its headers holds one thread, not the worker:
# with 32 threads a worker still answers webhooks while 20 such connections hang on it
# (tests/test_server.py). The app is thread-safe (no per-process state beyond the database
# pool), and SQLite writers already take turns on a file lock.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Each thread may hold a database connection: the app keeps that many open per worker rather
# than opening one per request (database.py).
os.environ.setdefault("DATABASE_POOL_SIZE", str(threads))

# A worker that does not report for this long is killed and replaced. Every request we make
# to Twilio has its own timeout (TWILIO_TIMEOUT_SECONDS, 10 s), well under this.
timeout = 30
graceful_timeout = 20
# Twilio and the panel's pollers reuse connections; idle ones are closed after 5 s.
keepalive = 5

# Request-line and header limits: Twilio's requests are far below these; anything above is a
# 400 before the app sees it. Bodies are limited by the app (MAX_CONTENT_LENGTH, 64 KiB: 413).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Behind ngrok or a reverse proxy on this machine: trust its X-Forwarded-* (the app's ProxyFix
# decides how many hops count).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# One line per request on stdout; GUNICORN_ACCESS_LOG="" turns it off (the demo does).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
