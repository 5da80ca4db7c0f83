import TollgateRedis

extension Engine {
    /// The Redis hash holding every price, field `meter` or `meter@model`, value `micros/per`.
    static let pricesKey = "tg:prices"

    /// Sets the price of a meter (for one model, or for every model without its own).
    /// Every engine uses it within a second.
    public func setPrice(_ key: PriceKey, _ price: Price) async throws(TollgateError) {
        _ = try await send(RedisCommand(["HSET", Self.pricesKey, key.description, "\(price.price.micros)/\(price.per)"]))
        caches.prices.withLock { $0.fetchedAt = nil }
    }

    /// Removes a price; usage of that meter (and model) is then `unknown_meter`.
    public func removePrice(_ key: PriceKey) async throws(TollgateError) -> Bool {
        let removed = try await send(RedisCommand(["HDEL", Self.pricesKey, key.description])).int64 == 1
        caches.prices.withLock { $0.fetchedAt = nil }
        return removed
    }

    /// The whole price book, read from Redis now.
    public func prices() async throws(TollgateError) -> [PriceKey: Price] {
        let reply = try await send(RedisCommand(["HGETALL", Self.pricesKey]))
        guard let flat = reply.array else { throw TollgateError(.redisError, "unexpected price book reply") }
        var prices: [PriceKey: Price] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let field = flat[index].string, let value = flat[index + 1].string,
               let key = try? PriceKey(parsing: field), let price = try? Price(stored: value) {
                prices[key] = price
            }
            index += 2
        }
        return prices
    }

    /// The price book, re-read when older than `priceRefreshInterval`. While one caller
    /// refreshes, others keep using the copy they have unless it is older than twice that.
    func currentPrices() async throws(TollgateError) -> [PriceKey: Price] {
        let now = ContinuousClock.now
        let (cached, mustRefresh, mustWait) = caches.prices.withLock { state -> ([PriceKey: Price], Bool, Bool) in
            guard let fetchedAt = state.fetchedAt else { return (state.prices, true, true) }
            let age = fetchedAt.duration(to: now)
            if age < EngineCaches.priceRefreshInterval { return (state.prices, false, false) }
            if age >= EngineCaches.priceRefreshInterval * 2 { return (state.prices, true, true) }
            if state.refreshing { return (state.prices, false, false) }
            state.refreshing = true
            return (state.prices, true, false)
        }
        guard mustRefresh else { return cached }
        do {
            let fresh = try await prices()
            caches.prices.withLock { state in
                state.prices = fresh
                state.fetchedAt = now
                state.refreshing = false
            }
            return fresh
        } catch {
            caches.prices.withLock { $0.refreshing = false }
            if mustWait { throw error }
            return cached
        }
    }
}

extension PriceKey {
    /// Parses `meter` or `meter@model`.
    public init(parsing text: String) throws(TollgateError) {
        if let at = text.firstIndex(of: "@") {
            try self.init(meter: String(text[..<at]), model: String(text[text.index(after: at)...]))
        } else {
            try self.init(meter: text)
        }
    }
}

extension Price {
    /// Parses the stored form `micros/per`.
    init(stored text: String) throws(TollgateError) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let micros = Int64(parts[0]), let per = Int64(parts[1]),
              let price = Money(micros: micros) else {
            throw TollgateError(.redisError, "stored price '\(text)' is malformed")
        }
        try self.init(price: price, per: per)
    }
}

extension [PriceKey: Price] {
    /// The price for a usage item: its model's own, else the meter's for any model.
    func price(for key: PriceKey) -> Price? {
        if let exact = self[key] { return exact }
        guard key.model != nil, let meterOnly = try? PriceKey(meter: key.meter) else { return nil }
        return self[meterOnly]
    }
}
