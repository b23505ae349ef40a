// A tfjs IOHandler that reads a LayersModel folder from disk (model.json and its weight
// shards), for `tf.loadLayersModel(fileHandler(dir))`: plain @tensorflow/tfjs has no `file://`
// loader (that is tfjs-node's). vlmc's own forward pass does not need it (execute.ts runs the
// graph synchronously); it loads the same folder into tfjs-layers, which is how the test checks
// that vlmc runs the model exactly as tfjs does, and how a program outside vlmc can.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { modelFolder } from "./folder.js";

export function fileHandler(path: string): tfjs.io.IOHandler {
  const folder = modelFolder(path);
  return {
    async load(): Promise<tfjs.io.ModelArtifacts> {
      const doc = JSON.parse(readFileSync(join(folder, "model.json"), "utf8")) as {
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        modelTopology: unknown;
        weightsManifest: tfjs.io.WeightsManifestConfig;
      };
      const specs: tfjs.io.WeightsManifestEntry[] = [];
      const shards: Buffer[] = [];
      for (const group of doc.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) shards.push(readFileSync(join(folder, p)));
      }
      const bytes = Buffer.concat(shards);
      return {
        modelTopology: doc.modelTopology as unknown as tfjs.io.ModelArtifacts["modelTopology"],
        weightSpecs: specs,
        weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
        ...(doc.format ? { format: doc.format } : {}),
        ...(doc.generatedBy ? { generatedBy: doc.generatedBy } : {}),
        ...(doc.convertedBy ? { convertedBy: doc.convertedBy } : {}),
      };
    },
  };
}
