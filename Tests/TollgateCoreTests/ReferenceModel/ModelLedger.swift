// The ledger as the model predicts it (docs/ARCHITECTURE.md: every change of balance is an entry; I2):
// for every step, the entries written, in order, with the balance and held amount after each.
//
//   credit       topup | grant | adjustment, +amount (a grant: its expiry, none if never)
//   debit        −cost, one per usage item of an authorize (meter, model, quantity, key), or one
//                for a plain debit
//   hold         0, held +reserved
//   capture      −cost, held −what the hold still reserved of it (reports and settle: per item)
//   refund       +amount given back at settle (per item, quantity negative)
//   release      0, held −what the hold still reserved (release and settle)
//   expire       a hold past its TTL: 0, held −rest, with the hold's request id; or promotional
//                credit past its expiry: −amount, dated at the expiry

struct ModelEntry: Hashable, Sendable, CustomStringConvertible {
    struct Usage: Hashable, Sendable {
        var meter: String
        var model: String?
        var quantity: Int64
        var key: String?
    }

    var kind: String
    var amount: Int64
    var balance: Int64 = 0
    var held: Int64 = 0
    var heldDelta: Int64
    var time: Int64
    var requestID: String? = nil
    var hold: Int64? = nil
    var usage: Usage? = nil
    /// An `expire` of promotional credit (its request id and reference name the grant).
    var grantExpiry = false
    /// A grant's expiry (nil: never, or not a grant).
    var expires: Int64? = nil

    /// Everything but the usage it charges for.
    var head: String {
        var parts = ["\(kind) \(amount) → balance \(balance) held \(held) (held \(heldDelta >= 0 ? "+" : "")\(heldDelta)) at \(time)"]
        if grantExpiry { parts.append("of promotional credit") }
        if let requestID { parts.append("[\(requestID)]") }
        if let hold { parts.append("h\(hold)") }
        if let expires { parts.append("expires \(expires)") }
        return parts.joined(separator: " ")
    }

    /// The kind, amount and usage: which item an amount was for.
    var label: String {
        guard let usage else { return "\(kind) \(amount)" }
        return "\(kind) \(amount) for \(modelItemName(usage.meter, usage.model))=\(usage.quantity) key \(usage.key ?? "-")"
    }

    var description: String { usage == nil ? head : head + " " + label }
}

extension ModelAccount {
    /// Appends an entry with the balance and held amount as they are now.
    mutating func record(_ entry: ModelEntry) {
        var entry = entry
        entry.balance = balance
        entry.held = held
        ledger.append(entry)
    }
}

/// Entries of one step made comparable: consecutive expiries of promotional credit dated at
/// the same moment become one (the engine writes one per grant; the model keeps grants of one
/// expiry as one pool).
func mergingGrantExpiries(_ entries: [ModelEntry]) -> [ModelEntry] {
    var out: [ModelEntry] = []
    for entry in entries {
        if entry.grantExpiry, let last = out.last, last.grantExpiry, last.time == entry.time {
            out[out.count - 1].amount += entry.amount
            out[out.count - 1].balance = entry.balance
            out[out.count - 1].held = entry.held
        } else {
            out.append(entry)
        }
    }
    return out
}

/// Where two steps' entries differ: the heads in order, then which item each amount was for
/// (lines of equal cost may be written in either order), or nil when they agree.
func ledgerDifferences(engine: [ModelEntry], model: [ModelEntry]) -> [String]? {
    let (a, b) = (mergingGrantExpiries(engine), mergingGrantExpiries(model))
    if a.map(\.head) == b.map(\.head) && a.map(\.label).sorted() == b.map(\.label).sorted() { return nil }
    return ["ledger entries of the step differ:", "  engine wrote:"] + a.map { "    " + $0.description }
        + ["  model expects:"] + b.map { "    " + $0.description }
}
