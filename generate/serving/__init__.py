"""`generate serve`: the loaded models behind an HTTP API, many requests batched together as they are written.

`engine` steps every active stream of a model together (continuous
batching); `app` is the ASGI application (Starlette) that checks requests,
runs each through the same pipeline as `generate sample`, and streams the
text as Server-Sent Events; `server` loads the models and runs it on uvicorn.
"""
