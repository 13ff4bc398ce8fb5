/**
 * The public surface is closed: every type that an exported function, class or type of
 * dist/lib/index.d.ts mentions (transitively) is itself exported, so a consumer can name
 * what it receives and passes; and the declarations type-check on their own, so nothing
 * they still mention was dropped as @internal (tsconfig stripInternal).
 */
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/paths.js";

const programs = new Map<string, ts.Program>();
function program(entry: string): ts.Program {
  if (programs.has(entry)) return programs.get(entry)!;
  const p = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true, types: ["node"] });
  programs.set(entry, p);
  return p;
}

/** Type errors inside the package's own declaration files. */
function declarationErrors(entry: string): string[] {
  const p = program(entry);
  const libDir = path.dirname(entry) + path.sep;
  return p
    .getSourceFiles()
    .filter((f) => path.resolve(f.fileName).startsWith(libDir))
    .flatMap((f) => [...p.getSyntacticDiagnostics(f), ...p.getSemanticDiagnostics(f)])
    .map((d) => `${path.relative(libDir, d.file!.fileName)}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

function unexportedReferences(entry: string): string[] {
  const p = program(entry);
  const checker = p.getTypeChecker();
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(p.getSourceFile(entry)!)!).map(resolve));
  const libDir = path.dirname(entry) + path.sep;
  const missing = new Set<string>();
  const seen = new Set<ts.Node>();
  const visit = (decl: ts.Node, from: string) => {
    if (seen.has(decl)) return;
    seen.add(decl);
    const walk = (node: ts.Node): void => {
      let name: ts.Node | undefined;
      if (ts.isTypeReferenceNode(node)) name = node.typeName;
      else if (ts.isExpressionWithTypeArguments(node)) name = node.expression;
      else if (ts.isTypeQueryNode(node)) name = node.exprName;
      const raw = name && checker.getSymbolAtLocation(name);
      const sym = raw && resolve(raw);
      const d = sym?.declarations?.[0];
      if (sym && d && path.resolve(d.getSourceFile().fileName).startsWith(libDir) && !(sym.flags & (ts.SymbolFlags.TypeParameter | ts.SymbolFlags.EnumMember))) {
        if (!exported.has(sym)) missing.add(`${sym.name} (${path.relative(libDir, d.getSourceFile().fileName)}), used by ${from}`);
        for (const dd of sym.declarations!) visit(dd, sym.name);
      }
      ts.forEachChild(node, walk);
    };
    walk(decl);
  };
  for (const s of exported) for (const d of s.declarations ?? []) visit(d, s.name);
  return [...missing];
}

describe("public surface", () => {
  const entry = path.join(repoRoot, "dist/lib/index.d.ts");

  it("every type the exported declarations reference is exported", () => {
    expect(unexportedReferences(entry)).toEqual([]);
  });

  it("the declarations type-check on their own (stripInternal left no dangling reference)", () => {
    expect(declarationErrors(entry)).toEqual([]);
  });

  it("exports what loading, tokenizing, writing and pulling need", async () => {
    const api = await import("../../lib/index.js");
    for (const name of ["loadModel", "tokenizerFromHuggingFace", "loadTokenizer", "readGGUF", "writeGGUF", "ggufValue", "GGUFValueType", "GGMLType", "pullModel", "DEFAULT_MODEL"])
      expect(api, name).toHaveProperty(name);
  });
});
