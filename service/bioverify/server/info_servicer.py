"""InfoService: what this service runs."""

from __future__ import annotations

import grpc

from bioverify.v1 import info_pb2, info_pb2_grpc


class InfoServicer(info_pb2_grpc.InfoServiceServicer):  # type: ignore[misc]
    def __init__(self, info: info_pb2.ServiceInfo) -> None:
        self._info = info

    def GetServiceInfo(
        self, request: info_pb2.GetServiceInfoRequest, context: grpc.ServicerContext
    ) -> info_pb2.ServiceInfo:
        return self._info
