package facenet

// packed is a [k][n] weight matrix stored as panels of 16 columns: panel p holds rows
// 0..k-1 of columns 16p..16p+15 contiguously, so the kernel streams one panel while it
// broadcasts four rows of the im2col matrix. Every layer of the net has a multiple of 16
// output channels; pack pads otherwise.
type packed struct {
	k, n, panels int
	d            []float32
}

const panelW = 16

func pack(w []float32, k, n int) packed {
	p := packed{k: k, n: n, panels: (n + panelW - 1) / panelW}
	p.d = make([]float32, p.panels*k*panelW)
	for r := 0; r < k; r++ {
		for c := 0; c < n; c++ {
			p.d[(c/panelW)*k*panelW+r*panelW+c%panelW] = w[r*n+c]
		}
	}
	return p
}

// gemm sets c[m][b.n] = a[m][k] × b.
func gemm(m, k int, a []float32, b *packed, c []float32) {
	var tile [4 * panelW]float32
	for p := 0; p < b.panels; p++ {
		bp := b.d[p*k*panelW : (p+1)*k*panelW]
		cols := min(panelW, b.n-p*panelW)
		i := 0
		if useAsm && k > 0 {
			for ; i+4 <= m; i += 4 {
				kern4x16(k, &a[i*k], k, &bp[0], &tile[0])
				for r := 0; r < 4; r++ {
					copy(c[(i+r)*b.n+p*panelW:(i+r)*b.n+p*panelW+cols], tile[r*panelW:r*panelW+cols])
				}
			}
		}
		for ; i < m; i++ {
			row1x16(a[i*k:(i+1)*k], bp, tile[:panelW])
			copy(c[i*b.n+p*panelW:i*b.n+p*panelW+cols], tile[:cols])
		}
	}
}

// row1x16 is the portable kernel: one row of a times one panel.
func row1x16(a, bp []float32, out []float32) {
	var acc [panelW]float32
	for kk, av := range a {
		b := bp[kk*panelW : kk*panelW+panelW : kk*panelW+panelW]
		acc[0] += av * b[0]
		acc[1] += av * b[1]
		acc[2] += av * b[2]
		acc[3] += av * b[3]
		acc[4] += av * b[4]
		acc[5] += av * b[5]
		acc[6] += av * b[6]
		acc[7] += av * b[7]
		acc[8] += av * b[8]
		acc[9] += av * b[9]
		acc[10] += av * b[10]
		acc[11] += av * b[11]
		acc[12] += av * b[12]
		acc[13] += av * b[13]
		acc[14] += av * b[14]
		acc[15] += av * b[15]
	}
	copy(out, acc[:])
}
