"""The yardstick of bench/public_reads.py: a bare Flask application, served by the same gunicorn settings."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello, World!"
