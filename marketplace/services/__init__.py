"""Domain operations: plain functions over ids, a session and an explicit actor. They flush; the caller commits."""
