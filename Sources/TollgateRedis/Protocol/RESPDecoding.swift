import CHiredis

extension RESPValue {
    /// Decodes every complete reply in `bytes` (RESP2, as Redis writes it) with hiredis' reply
    /// reader, the same parser and conversion the connections use; for captured traffic,
    /// tests and benchmarks. Bytes after the last complete reply are ignored.
    public static func decode(_ bytes: [UInt8]) throws(RedisError) -> [RESPValue] {
        guard let reader = redisReaderCreate() else { throw RedisError(.protocolError, "cannot create a reply reader") }
        defer { redisReaderFree(reader) }
        let fed = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard fed == REDIS_OK else { throw RedisError(.protocolError, "cannot feed the reply reader") }
        var values: [RESPValue] = []
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                let message = withUnsafeBytes(of: reader.pointee.errstr) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                throw RedisError(.protocolError, "malformed RESP: \(message)")
            }
            guard let reply else { return values }
            values.append(RESPValue(reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
    }
}
