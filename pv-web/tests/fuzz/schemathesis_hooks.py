"""schemathesis hooks for bins/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

The WHEP operations take SDP text (`application/sdp`, `application/trickle-ice-sdpfrag`):
schemathesis sends such bodies the way it sends `text/plain`.
"""

import schemathesis

schemathesis.serializer.alias(
    ["application/sdp", "application/trickle-ice-sdpfrag"], "text/plain"
)
