"""One simulated Modbus TCP device on its own port (pymodbus), with switchable faults.

The device serves whatever values it was last given (`update`), laid out by its profile.
It answers any unit id, like most TCP devices that are not gateways. Faults, as a client
sees them on the wire:

    none        a normal answer
    no-answer   the request is read and dropped: the client times out
    exception   every request gets exception response 4 (server device failure)
    disconnect  the connection is closed (FIN) when a request arrives; connecting works
    garbage     a well-framed MBAP header (the request's transaction and unit id) around a
                malformed PDU: the function code, then a byte count of 255 followed by only
                2–8 random bytes. Clients reject it at once ("byte count > length") rather
                than timing out, which is what tells garbage apart from no answer.

`stop()` closes the listening socket and every open connection (connection refused until
`start()`, which listens on the same port again).
"""
import logging

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from .modbus_profile import BIT_KINDS, REGISTER_KINDS

log = logging.getLogger("octopus_simulators.modbus")

FAULTS = ("none", "no-answer", "exception", "disconnect", "garbage")
# Function code -> the register kind it reads or writes (pymodbus's SimRuntime mapping).
FUNCTION_KINDS = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input",
                  3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}
MBAP_SIZE = 7


class DeviceServer:
    """A device's registers, its listening socket and its fault mode; used on one event loop."""

    def __init__(self, name, profile, host, port, rng):
        self.name, self.profile, self.host, self.port = name, profile, host, port
        self.rng = rng              # for garbage only, so faults never shift the values
        self.fault = "none"
        self.values = {}            # attribute -> physical value as served (rounded)
        self.blocks = {}            # kind -> (first address, [registers] or [bits])
        self._words = {}            # kind -> registers in pymodbus's layout for that kind
        self._server = None

    @property
    def listening(self):
        return self._server is not None

    def update(self, values):
        """Serve `values` (attribute -> physical value) from now on."""
        self.values = {a.name: a.served(values[a.name]) for a in self.profile.attributes}
        for kind in REGISTER_KINDS:
            attributes = self.profile.by_kind(kind)
            if not attributes:
                continue
            first = attributes[0].address
            if kind in BIT_KINDS:
                first -= first % 16           # pymodbus keeps bits in 16-bit words
            end = max(a.address + a.size for a in attributes)
            block = [False if kind in BIT_KINDS else 0] * (end - first)
            for a in attributes:
                block[a.address - first:a.address - first + a.size] = a.encode(values[a.name])
            self.blocks[kind] = (first, block)
            if kind in BIT_KINDS:
                block = block + [False] * (-len(block) % 16)
                self._words[kind] = SimUtils.bitsToRegisters(block)
            else:
                self._words[kind] = block

    def set_fault(self, fault):
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
        if fault != self.fault:
            log.info("%s (%s:%s): fault %s", self.name, self.host, self.port, fault)
        self.fault = fault

    async def start(self):
        """Listen (again) on the device's port; port 0 picks a free one, kept from then on."""
        if self._server:
            return
        server = _TcpServer(self, self._sim_device(), address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            await server.shutdown()
            raise OSError(f"{self.name}: cannot listen on {self.host}:{self.port} (port in use "
                          f"or address not local; pymodbus's warning above says which)") from None
        self.port = server.transport.sockets[0].getsockname()[1]
        self._server = server
        log.info("%s serving Modbus TCP on %s:%s (any unit id; profile %s: %s)", self.name,
                 self.host, self.port, self.profile.model, self._describe())

    async def stop(self):
        """Close the listening socket and all open connections."""
        if self._server:
            server, self._server = self._server, None
            await server.shutdown()
            log.info("%s stopped: %s:%s refuses connections", self.name, self.host, self.port)

    def _sim_device(self):
        # pymodbus needs a block of each kind; a kind the profile lacks gets a placeholder
        # that _serve refuses (illegal address), as a real device without it would.
        blocks = []
        for kind in REGISTER_KINDS:
            attributes = self.profile.by_kind(kind)
            if kind in BIT_KINDS:
                data = [SimData(a.address, values=[False], datatype=DataType.BITS,
                                readonly=True) for a in attributes]
                blocks.append(data or [SimData(0, values=[False] * 16, datatype=DataType.BITS)])
            else:
                # One entry per attribute: addresses between attributes stay invalid.
                data = [SimData(a.address, values=[0] * a.size, datatype=DataType.REGISTERS,
                                readonly=True) for a in attributes]
                blocks.append(data or [SimData(0, datatype=DataType.INVALID)])
        # id 0: answer every unit id. Read-only: the profile is a map of measurements.
        return SimDevice(0, simdata=tuple(blocks), action=self._serve)

    async def _serve(self, function_code, start_address, address, count, registers,
                     set_values):
        # pymodbus's documented hook on each access: copy in the values of this moment.
        kind = FUNCTION_KINDS.get(function_code)
        if kind not in self._words:
            return ExcCodes.ILLEGAL_ADDRESS
        words = self._words[kind]
        registers[:len(words)] = words
        return None

    def _describe(self):
        parts = []
        for kind in REGISTER_KINDS:
            attributes = self.profile.by_kind(kind)
            if attributes:
                first = attributes[0].address
                last = max(a.address + a.size - 1 for a in attributes)
                parts.append(f"{kind} {first}" + (f"–{last}" if last > first else ""))
        return ", ".join(parts)

    def garbage(self, request):
        """A malformed answer to `request` (one MBAP frame): see the module's docstring."""
        pdu = bytes([request[7] & 0x7F, 0xFF]) + self.rng.randbytes(self.rng.randint(2, 8))
        return request[:2] + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + request[6:7] + pdu


class _TcpServer(ModbusTcpServer):
    def __init__(self, device, sim_device, address):
        self.device = device
        super().__init__(sim_device, address=address)

    def callback_new_connection(self):
        return _FaultyRequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class _FaultyRequestHandler(ServerRequestHandler):
    """pymodbus's per-connection handler, with the device's fault applied to each request.

    The faults live here because pymodbus has no public per-connection hook: `trace_packet`
    can rewrite bytes but cannot close the connection it does not know, and a SimDevice
    `action` runs only after the address checks, so it cannot fail every request.
    """

    def callback_data(self, data, addr=None):
        fault = self.server.device.fault
        if fault in ("none", "exception"):
            return super().callback_data(data, addr)
        if fault == "no-answer":
            return len(data)
        if fault == "disconnect":
            self.close()
            return len(data)
        # garbage: answer each complete frame
        if len(data) < MBAP_SIZE + 1:
            return 0
        size = MBAP_SIZE - 1 + int.from_bytes(data[4:6], "big")
        if len(data) < size:
            return 0
        self.send(self.server.device.garbage(data[:size]))
        return size

    async def handle_request(self):
        if self.server.device.fault != "exception" or not self.last_pdu:
            await super().handle_request()
            return
        response = ExceptionResponse(self.last_pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = self.last_pdu.transaction_id
        response.dev_id = self.last_pdu.dev_id
        self.server_send(response, self.last_addr)
