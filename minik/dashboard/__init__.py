"""The live dashboard: a page that shows one minik instance as it changes, and its server.

`minik dashboard` works like `kubectl proxy`: it starts a small HTTP server
on 127.0.0.1 that serves the page (`static/`: one HTML file, one hand-written
JS file and one CSS file, shipped as package data; no build step, no
framework, nothing fetched from elsewhere) and relays the page's read-only
`/api/...` and `/apis/...` requests to minik's API server through
`minik.client`, which adds the instance's bearer token and trusts its CA. So
the token never reaches the browser or a URL, and the browser never meets
minik's self-signed certificate. `minik.dashboard.app` owns that server.

The page lists each kind it shows once and then follows it with a watch
from the list's resourceVersion (a 410 Gone means list again). Browsers open
at most six HTTP/1.1 connections to one host, fewer than the page's ten
watches, so the page asks for each watch as a WebSocket, as kube-apiserver
also serves it (one JSON watch event per message): the local server opens
the ordinary streamed watch upstream and relays its lines.
"""
