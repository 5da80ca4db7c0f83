import Foundation
import HTTPTypes
import Hummingbird
#if canImport(Glibc)
import Glibc
#endif

/// Who is asking, for limits against guessing: the peer's address, or, when the peer is a
/// trusted proxy, the nearest address in `X-Forwarded-For` that is not one. IPv6 addresses
/// count by their /64, which is what one client usually holds.
struct ClientAddressResolver: Sendable {
    let trustedProxies: Set<String>

    func key(_ request: Request, _ context: TollgateRequestContext) -> String? {
        key(headers: request.headers, peer: context.clientAddress)
    }

    /// The same from a request's headers and its peer's address (the WebSocket upgrade has
    /// them before there is a `Request`).
    func key(headers: HTTPFields, peer: String?) -> String? {
        guard var address = peer else { return nil }
        if trustedProxies.contains(address), let forwarded = headers[.init("X-Forwarded-For")!] {
            let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let client = hops.last(where: { !trustedProxies.contains($0) }) { address = client }
        }
        return Self.limitKey(address)
    }

    /// `a.b.c.d` as is; an IPv6 address as its /64 (`2001:db8:1:2::/64`); anything else as given.
    static func limitKey(_ address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")  // IPv4-mapped
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
