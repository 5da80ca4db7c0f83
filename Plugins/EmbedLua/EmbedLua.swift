import Foundation
import PackagePlugin

/// Embeds the package's `lua/` folder (the single source of Tollgate's atomic state
/// transitions) into the target as `EmbeddedLua.library`, so the binary carries exactly
/// the scripts in the repository and can verify that Redis runs the same.
@main
struct EmbedLua: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let luaDirectory = context.package.directoryURL.appending(path: "lua")
        let files = try FileManager.default
            .contentsOfDirectory(at: luaDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "lua" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedLua.swift")
        return [
            .buildCommand(
                displayName: "Embedding lua/ into \(target.name)",
                executable: try context.tool(named: "LuaEmbedder").url,
                arguments: [output.path()] + files.map { $0.path() },
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
