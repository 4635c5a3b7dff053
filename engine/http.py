"""The HTTP protocol the service runs on: uvicorn's, with the limits it lacks (GuardedHttp)."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with the limits it lacks, so one client cannot starve the others:
    - a request (headers and body) must arrive within `request_timeout` seconds of the connection
      opening or of the previous response (a slowloris client's half-sent headers are cut off);
    - at most `max_connections` connections are open at once, and at most `max_per_client` from one
      address (those beyond are closed on arrival), so one client holding half-sent requests and
      re-opening each as it is cut off takes its share, not every place;
    - a request's line and headers may take `max_head_bytes` (431 and closed beyond: httptools
      would buffer a header of any size until it ends), so memory is bounded by the connections."""

    request_timeout = 10.0
    max_connections = 512
    max_per_client = 64
    max_head_bytes = 32 * 1024
    per_client: dict[str, int] = {}  # open connections by client address, in this process

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline, self._counted, self._head = None, None, 0
        address = self.client[0] if self.client else ""
        if (
            len(self.connections) > self.max_connections
            or self.per_client.get(address, 0) >= self.max_per_client
        ):
            transport.close()
            return
        self.per_client[address] = self.per_client.get(address, 0) + 1
        self._counted = address
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head is not None:  # still reading a request's line and headers
            room = self.max_head_bytes - self._head
            if len(data) > room:
                # the headers may end inside this chunk, with the body after them (one read of a
                # large POST): feed what fits, and refuse only if the headers did not end in it
                super().data_received(data[:room])
                if self._head is not None:
                    self._refuse_head()
                elif not self.transport.is_closing():
                    super().data_received(data[room:])
                return
            self._head += len(data)
        super().data_received(data)

    def _refuse_head(self) -> None:
        self._head = None
        if not self.transport.is_closing():
            body = json.dumps(
                {"detail": f"request line and headers over {self.max_head_bytes} bytes"}
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head = 0  # the next request's head
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if getattr(self, "_counted", None) is not None:
            self.per_client[self._counted] -= 1
            if not self.per_client[self._counted]:
                del self.per_client[self._counted]
            self._counted = None
        super().connection_lost(exc)
