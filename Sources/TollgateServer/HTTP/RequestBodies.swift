import TollgateCore

/// `{"meter": "tokens.input", "model": "m", "quantity": 1200}`
struct UsageBody: Decodable, Sendable {
    let meter: String
    let model: String?
    let quantity: Int64

    private enum CodingKeys: String, CodingKey, CaseIterable { case meter, model, quantity }

    init(from decoder: any Decoder) throws {
        try refuseUnknownFields(decoder, CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        meter = try container.decode(String.self, forKey: .meter)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        quantity = try container.decode(Int64.self, forKey: .quantity)
    }

    func item() throws(TollgateError) -> UsageItem {
        try UsageItem(meter: meter, model: model, quantity: quantity)
    }

    static func items(_ bodies: [UsageBody]) throws(TollgateError) -> [UsageItem] {
        var items: [UsageItem] = []
        for body in bodies { items.append(try body.item()) }
        return items
    }
}

/// `POST /v1/authorize`
struct AuthorizeBody: StrictDecodable {
    static let fields: Set<String> = ["key", "account", "request_id", "usage", "mode", "ttl_ms"]
    let key: String?
    let account: String?
    let request_id: String
    let usage: [UsageBody]
    let mode: String?
    let ttl_ms: Int64?
}

/// `POST /v1/holds/{hold_id}/report|settle|release`
struct HoldFollowUpBody: StrictDecodable {
    static let fields: Set<String> = ["request_id", "usage"]
    let request_id: String?
    let usage: [UsageBody]?
}

/// `POST /v1/accounts`
struct CreateAccountBody: StrictDecodable {
    static let fields: Set<String> = ["id", "credit_limit"]
    let id: String
    let credit_limit: String?
}

/// `POST /v1/accounts/{id}/credits`
struct CreditBody: StrictDecodable {
    static let fields: Set<String> = ["amount", "request_id", "kind"]
    let amount: String
    let request_id: String
    let kind: String?
}

/// `PUT /v1/prices/{meter}`
struct PriceBody: StrictDecodable {
    static let fields: Set<String> = ["price", "per", "model"]
    let price: String
    let per: Int64?
    let model: String?
}

/// `PUT /v1/accounts/{id}/limits`, `PUT /v1/keys/{key_id}/limits`: the fields of `limits set`;
/// a count of 0 or a cap of "0" removes that limit.
struct LimitsBody: StrictDecodable {
    static let fields: Set<String> = ["rps", "rpm", "rph", "burst", "tpm", "concurrency",
                                      "hourly_cap", "daily_cap", "monthly_cap", "lifetime_cap"]
    let rps: Int64?
    let rpm: Int64?
    let rph: Int64?
    let burst: Int64?
    let tpm: Int64?
    let concurrency: Int64?
    let hourly_cap: String?
    let daily_cap: String?
    let monthly_cap: String?
    let lifetime_cap: String?

    func update() throws(TollgateError) -> LimitsUpdate {
        try LimitsUpdate(
            counts: [.rps: rps, .rpm: rpm, .rph: rph, .burst: burst, .tpm: tpm, .concurrency: concurrency],
            caps: [.hourlyCap: hourly_cap, .dailyCap: daily_cap, .monthlyCap: monthly_cap, .lifetimeCap: lifetime_cap])
    }
}

/// Refuses a JSON object that has fields other than `allowed`, at the top of a body
/// (`JSON.decode`) and in nested objects alike.
func refuseUnknownFields(_ decoder: any Decoder, _ allowed: [String]) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    let unknown = container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }
    guard unknown.isEmpty else {
        throw UnknownFields(codingPath: container.codingPath, unknown: unknown.sorted(), allowed: allowed)
    }
}

/// A JSON object with fields its type does not know; `JSON.decode` answers it with 400.
struct UnknownFields: Error, CustomStringConvertible {
    let codingPath: [any CodingKey]
    let unknown: [String]
    let allowed: [String]

    var description: String {
        "unknown field(s) \(unknown.joined(separator: ", ")); allowed: \(allowed.joined(separator: ", "))"
    }
}

struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `POST /v1/coupons`
struct CreateCouponsBody: StrictDecodable {
    static let fields: Set<String> = ["amount", "count", "max_redemptions", "expires", "account", "credit_expires", "request_id"]
    let amount: String
    let count: Int?
    let max_redemptions: Int?
    let expires: String
    let account: String?
    let credit_expires: String?
    let request_id: String?
}

/// `POST /v1/accounts/{id}/redeem`
struct RedeemBody: StrictDecodable {
    static let fields: Set<String> = ["code", "request_id"]
    let code: String
    let request_id: String?
}

/// `POST /v1/accounts/{id}/grants`
struct GrantBody: StrictDecodable {
    static let fields: Set<String> = ["amount", "expires", "request_id"]
    let amount: String
    let expires: String?
    let request_id: String
}

/// `POST /v1/accounts/{id}/deposits`
struct DepositBody: StrictDecodable {
    static let fields: Set<String> = ["amount", "token", "provider", "request_id"]
    let amount: String
    let token: String
    let provider: String
    let request_id: String?
}
