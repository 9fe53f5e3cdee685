"""Kubernetes' streaming wire protocols, shared by the API server and the node agent.

`pods/exec`, `pods/attach` and `pods/portforward` leave HTTP behind after an
upgrade (Kubernetes' `k8s.io/apimachinery/pkg/util/httpstream`):

- `channels`: the WebSocket channel protocols (`v5.channel.k8s.io`,
  `v4.channel.k8s.io`, `channel.k8s.io` and their base64 forms) and the
  SPDY stream protocol versions (`X-Stream-Protocol-Version`);
- `spdy`: SPDY/3.1 framing (frames, zlib header blocks with SPDY's
  dictionary), free of any I/O; `spdy_connection` runs a session of it
  over any byte pipe (a raw upgraded connection, or a WebSocket tunnel as
  port-forward uses);
- `upgrade`: taking over an aiohttp server connection after
  `101 Switching Protocols`, dialling such an upgrade as a client, and
  relaying the bytes of two upgraded connections;
- `portforward`: port-forward's data and error streams and their pairing;
  `tunnel`: relaying a byte stream tunnelled in a WebSocket to an upgraded
  connection (port-forward from kubectl 1.31 on);
- `liveness`: finding out that a peer left while its connection is held
  back unread, and resetting a connection so that its peer finds out.
"""
