// Usage: node read_zarr.mjs <store path or http(s) URL> <element path>...
// Prints JSON: {path: {shape, dtype, attrs, values}} read with zarrita (values flattened).
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";

const [source, ...paths] = process.argv.slice(2);
let store = source.startsWith("http") ? new zarr.FetchStore(source) : new FileSystemStore(source);
const out = {};
for (const path of paths) {
  const node = await zarr.open(zarr.root(store).resolve(path));
  if (node instanceof zarr.Array) {
    const result = await zarr.get(node);
    const isChunk = result !== null && typeof result === "object" && "data" in result;
    const data = isChunk ? result.data : [result]; // 0-d arrays come back as a bare value
    const values = Array.from(data, (v) => (typeof v === "bigint" ? Number(v) : v));
    out[path] = { kind: "array", shape: isChunk ? result.shape : [], dtype: node.dtype, attrs: node.attrs, values };
  } else {
    out[path] = { kind: "group", attrs: node.attrs };
  }
}
process.stdout.write(JSON.stringify(out));
