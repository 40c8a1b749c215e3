"""The Docker Engine API (1.41) on a unix socket: `forklift system service`.

`server` owns connections (asyncio + h11), routing, framing and errors; `system`,
`containers` and `images` hold the endpoints, each a synchronous function that calls the
engine in a worker thread. See docs/api.md.
"""
