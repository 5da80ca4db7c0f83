import ArgumentParser
import TollgateCore

struct PriceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "price",
        abstract: "Set and list prices: PRICE credits per N units of a meter, optionally per model.",
        subcommands: [Set.self, List.self, Remove.self]
    )

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a meter's price; every running engine uses it within a second.",
            discussion: "Example: tollgate price set tokens.input 0.15 --per 1000000 --model m")
        @Argument(help: "The meter: api_call, tokens.input, tokens.output, compute.seconds or your own.") var meter: String
        @Argument(help: "Credits per --per units, e.g. 0.15.") var price: String
        @Option(help: "How many units the price is for.") var per: Int64 = 1
        @Option(help: "Only for this model (else for every model without its own price).") var model: String?
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let key = try PriceKey(meter: meter, model: model)
            let value = try Price(price: try Money(parsing: price), per: per)
            try await options.engine().setPrice(key, value)
            print("price of \(key): \(value.price) per \(value.per)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every price.")
        @Flag(help: "Print a JSON array.") var json = false
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let prices = try await options.engine().prices().sorted { $0.key < $1.key }
            if json {
                Output.json(prices.map { PriceBookEntry(key: $0.key, price: $0.value) })
            } else {
                for (key, price) in prices { print("\(key)  \(price.price) per \(price.per)") }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a price (its usage becomes unknown_meter).")
        @Argument(help: "The meter.") var meter: String
        @Option(help: "The model.") var model: String?
        @OptionGroup var options: EngineOptions

        func run() async throws {
            let key = try PriceKey(meter: meter, model: model)
            guard try await options.engine().removePrice(key) else {
                Output.error("no price for \(key)")
                throw CLIExit.failure
            }
            print("removed the price of \(key)")
        }
    }
}
