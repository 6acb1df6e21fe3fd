// Reference descriptors from face-api itself (tfjs wasm backend), the oracle the Go port
// of the recognition net is tested against (shared/face/facenet parity test).
//
//   node descriptors.js <face-api package dir> <out dir> <image.jpg>...   writes crops + JSON
//   node descriptors.js --bench <face-api package dir> <image.jpg> [runs]  times detect+align+embed
//
// For each face found by face-api (SSD MobileNet v1 + 68 landmarks) it takes the crop
// face-api's own withFaceDescriptors() takes (dlib-style box from the landmarks), pads it to
// a square and resizes it to 150x150 exactly as toBatchTensor does, rounds it to 8-bit RGB,
// writes it as PNG (lossless, so Go reads the same pixels) and records the descriptor
// face-api computes from those 8-bit pixels.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const jpeg = require('jpeg-js');
const { PNG } = require('pngjs');

function readJPEG(file) {
  const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false });
  return tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
}

function writePNG(file, t) { // t: int32 [h,w,3]
  const [h, w] = t.shape;
  const px = t.dataSync();
  const png = new PNG({ width: w, height: h });
  for (let i = 0, j = 0; i < w * h; i++) {
    png.data[4 * i] = px[j++]; png.data[4 * i + 1] = px[j++]; png.data[4 * i + 2] = px[j++]; png.data[4 * i + 3] = 255;
  }
  fs.writeFileSync(file, PNG.sync.write(png));
}

async function setup(pkg) {
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  await tf.setBackend('wasm');
  await tf.ready();
  const faceapi = require(path.join(pkg, 'dist/face-api.node-wasm.js'));
  const model = path.join(pkg, 'model');
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(model);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(model);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(model);
  return faceapi;
}

// chip150 is face-api's toBatchTensor(150, true) for one crop, rounded to 8 bits.
function chip150(img, box) {
  return tf.tidy(() => {
    const [H, W] = img.shape;
    const x = Math.max(0, box.x); const y = Math.max(0, box.y);
    const w = Math.min(W, box.x + box.width) - x; const h = Math.min(H, box.y + box.height) - y;
    let t = tf.slice3d(img, [y, x, 0], [h, w, 3]).toFloat().expandDims(0);
    if (h !== w) {
      const diff = Math.abs(h - w); const a = Math.round(diff * 0.5); const b = diff - a;
      const axis = h > w ? 2 : 1;
      const pad = (n) => { const s = t.shape.slice(); s[axis] = n; return tf.zeros(s); };
      t = tf.concat(b ? [pad(b), t, pad(a)] : [t, pad(a)], axis);
    }
    t = tf.image.resizeBilinear(t, [150, 150], false, false);
    return t.round().clipByValue(0, 255).toInt().squeeze([0]);
  });
}

async function reference(pkg, out, images) {
  const faceapi = await setup(pkg);
  const opts = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 });
  const faces = [];
  for (const file of images) {
    const img = readJPEG(file);
    const found = await faceapi.detectAllFaces(img, opts).withFaceLandmarks();
    found.sort((a, b) => a.detection.box.x - b.detection.box.x);
    for (const [i, f] of found.entries()) {
      const box = f.landmarks.align(null, { useDlibAlignment: true });
      const chip = chip150(img, box);
      const name = `${path.basename(file, path.extname(file))}-${i}.png`;
      writePNG(path.join(out, name), chip);
      const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
      const lm = f.landmarks.positions;
      const mean = (a, b) => { let x = 0, y = 0; for (let k = a; k <= b; k++) { x += lm[k].x; y += lm[k].y; } return [x / (b - a + 1), y / (b - a + 1)]; };
      faces.push({
        image: path.basename(file), crop: name,
        box: [Math.round(f.detection.box.x), Math.round(f.detection.box.y), Math.round(f.detection.box.width), Math.round(f.detection.box.height)],
        chip: [box.x, box.y, box.width, box.height],
        leftEye: mean(36, 41), rightEye: mean(42, 47), mouth: mean(48, 67),
        descriptor: Array.from(d).map((v) => Number(v.toFixed(7))),
      });
      chip.dispose();
    }
    img.dispose();
  }
  const meta = { generator: 'tests/face/reference/descriptors.js', faceapi: faceapi.version, tfjs: tf.version_core, backend: tf.getBackend() };
  fs.writeFileSync(path.join(out, 'descriptors.json'), JSON.stringify({ meta, faces }, null, 1) + '\n');
  console.log(`${faces.length} faces -> ${out}`);
}

async function bench(pkg, file, runs) {
  const faceapi = await setup(pkg);
  const opts = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 });
  const img = readJPEG(file);
  let n = 0;
  const t = [];
  const cpuMs = (u) => (u.user + u.system) / 1000; // process CPU time, all threads
  await faceapi.detectAllFaces(img, opts).withFaceLandmarks().withFaceDescriptors(); // warm up
  let c0 = process.cpuUsage();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const res = await faceapi.detectAllFaces(img, opts).withFaceLandmarks().withFaceDescriptors();
    t.push(performance.now() - t0);
    n = res.length;
  }
  const pipelineCpu = cpuMs(process.cpuUsage(c0)) / runs;
  // embed only: one 150x150 chip
  const chip = tf.zeros([150, 150, 3], 'int32');
  const e = [];
  await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
  c0 = process.cpuUsage();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
    e.push(performance.now() - t0);
  }
  const embedCpu = cpuMs(process.cpuUsage(c0)) / runs;
  t.sort((a, b) => a - b); e.sort((a, b) => a - b);
  console.log(JSON.stringify({ image: path.basename(file), faces: n, pipelineMs: t[t.length >> 1], perFaceMs: t[t.length >> 1] / n,
    perFaceCpuMs: pipelineCpu / n, embedMs: e[e.length >> 1], embedCpuMs: embedCpu, backend: tf.getBackend() }));
}

const args = process.argv.slice(2);
if (args[0] === '--bench') bench(args[1], args[2], Number(args[3] || 5)).catch((e) => { console.error(e); process.exit(1); });
else reference(args[0], args[1], args.slice(2)).catch((e) => { console.error(e); process.exit(1); });
