/// Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
public enum HashSlot {
    /// How many slots a Redis Cluster has.
    public static let count = 16384

    /// The slot of `key`. When the key holds `{...}` with at least one byte between the first
    /// `{` and the next `}`, only those bytes are hashed (the hash tag), so `tg:{a:1}:acct` and
    /// `tg:{a:1}:ledger` share a slot.
    public static func of<Bytes: Collection<UInt8>>(_ key: Bytes) -> Int {
        let bytes = Array(key)
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
           let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            hashed = bytes[(open + 1)..<close]
        }
        return Int(crc16(hashed) & 0x3FFF)
    }

    /// The slot of a text key.
    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster uses.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
