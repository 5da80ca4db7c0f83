// Paid and promotional credit (docs/BILLING.md): balance = paid + promotional. Grants are
// promotional and may expire. Every debit, capture and authorize spends promotional credit
// first, the soonest-expiring first, then paid credit. A grant that reaches its expiry leaves
// with an `expire` entry dated at its expiry, written by the first step on the account after
// that moment; only what open holds still reserve and paid credit does not cover is held back
// (it stays due). Refunds at settle give back the part that was promotional as promotional
// credit, expiring when the latest grant the hold drew on did; the rest as paid credit.
//
// The model keeps promotional credit by expiry moment, not grant by grant: grants that expire
// at the same moment are one pool. Which of them a spend draws on first is not something the
// docs say, and no figure outside the engine's grant records depends on it but how the
// `expire` entries of one moment are split, which the harness compares summed.

/// Promotional credit that never expires is kept under this moment (the engine's NEVER).
let neverExpires: Int64 = maximumExact

struct PromotionalCredit: Hashable, Sendable {
    /// What is left, by the moment it expires.
    private(set) var byExpiry: [Int64: Int64] = [:]

    var total: Int64 { byExpiry.values.reduce(0, +) }

    mutating func add(_ amount: Int64, expiring expiry: Int64) {
        precondition(amount > 0)
        byExpiry[expiry, default: 0] += amount
    }

    /// Spends up to `amount`, soonest expiry first: how much it took and the latest expiry it
    /// drew on (0 when none).
    mutating func spend(_ amount: Int64) -> (used: Int64, latestExpiry: Int64) {
        var left = amount
        var used: Int64 = 0
        var latest: Int64 = 0
        for expiry in byExpiry.keys.sorted() where left > 0 {
            let take = min(byExpiry[expiry]!, left)
            left -= take
            used += take
            latest = max(latest, expiry)
            byExpiry[expiry]! -= take
            if byExpiry[expiry]! == 0 { byExpiry[expiry] = nil }
        }
        return (used, latest)
    }

    /// Expires what is due at `now`, soonest first, as far as `expirable` allows (it shrinks as
    /// credit goes). Returns the amount gone per expiry moment, in order.
    mutating func expire(now: Int64, expirable: (Int64) -> Int64) -> [(expiry: Int64, amount: Int64)] {
        var gone: [(Int64, Int64)] = []
        var promo = total
        for expiry in byExpiry.keys.sorted() where expiry <= now {
            let amount = min(byExpiry[expiry]!, expirable(promo))
            guard amount > 0 else { continue }
            byExpiry[expiry]! -= amount
            if byExpiry[expiry]! == 0 { byExpiry[expiry] = nil }
            promo -= amount
            gone.append((expiry, amount))
        }
        return gone
    }
}

extension ModelAccount {
    /// Expires due promotional credit, each expiry moment with an `expire` entry dated at it.
    /// Held back: what open holds reserve that paid credit (balance − promotional; backing
    /// nothing when negative) does not cover. Paid credit does not change while grants expire.
    mutating func expireGrants(now: Int64) {
        let reserved = max(0, held - max(0, balance - promotional.total))
        let gone = promotional.expire(now: now) { promo in max(0, promo - reserved) }
        for (expiry, amount) in gone {
            balance -= amount
            record(ModelEntry(kind: "expire", amount: -amount, heldDelta: 0, time: expiry, grantExpiry: true))
            grantsExpired += 1
        }
    }

    /// Takes `amount` off the balance, promotional credit first; returns what promotional
    /// credit it used and the latest expiry it drew on.
    mutating func takeCredit(_ amount: Int64) -> (used: Int64, latestExpiry: Int64) {
        balance -= amount
        guard amount > 0 else { return (0, 0) }
        return promotional.spend(amount)
    }
}
