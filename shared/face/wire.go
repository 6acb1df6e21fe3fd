package face

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/platform"
)

// ModelBucket holds the index snapshots (and, in deployments that ship them so, model files).
const ModelBucket = "models"

// S3Photos reads photos through the S3 API (MinIO); object names are "bucket/key".
type S3Photos struct{ Client *s3.Client }

// Get implements Photos.
func (p S3Photos) Get(ctx context.Context, object string) ([]byte, error) {
	bucket, key, ok := strings.Cut(object, "/")
	if !ok || bucket == "" || key == "" {
		return nil, fmt.Errorf("face: object name %q is not bucket/key", object)
	}
	out, err := p.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, 8<<20))
}

// S3Snapshots keeps index snapshots in ModelBucket, the seq in the object's metadata.
type S3Snapshots struct{ Client *s3.Client }

// Get implements Snapshots.
func (s S3Snapshots) Get(ctx context.Context, name string) (io.ReadCloser, int64, bool, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ModelBucket), Key: aws.String(name)})
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	seq, err := strconv.ParseInt(out.Metadata["seq"], 10, 64)
	if err != nil {
		out.Body.Close()
		return nil, 0, false, fmt.Errorf("face: snapshot %s has no seq", name)
	}
	return out.Body, seq, true, nil
}

// Put implements Snapshots.
func (s S3Snapshots) Put(ctx context.Context, name string, body []byte, seq int64) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ModelBucket), Key: aws.String(name),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/octet-stream"),
		Metadata: map[string]string{"seq": strconv.FormatInt(seq, 10)}})
	return err
}

// MaskedPeople reads persons from the register and masks them.
type MaskedPeople struct{ Store *person.Store }

// Masked implements People.
func (m MaskedPeople) Masked(ctx context.Context, id string) (string, string, error) {
	p, err := m.Store.Get(ctx, id)
	if err != nil {
		return "", "", nil // an enrolee without a register entry (bulk loads): nothing to show
	}
	return mask.Name(p.Name), mask.IDNumber(p.IDNumber), nil
}

// LoadMatching reads the thresholds: face_verify_threshold, face_identify_max_distance,
// face_identify_top_k.
func LoadMatching(env *envconf.Env) (Matching, error) {
	m := DefaultMatching()
	float := func(key string, dst *float64) {
		if v, ok := env.Lookup(key); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || f > 4 {
				env.Fail(key, "must be a distance between 0 and 4")
				return
			}
			*dst = f
		}
	}
	float("face_verify_threshold", &m.VerifyThreshold)
	float("face_identify_max_distance", &m.IdentifyMaxDistance)
	m.IdentifyTopK = env.Int("face_identify_top_k", m.IdentifyTopK, 1, 100)
	return m, env.Err()
}

// LoadRules reads the quality thresholds: face_min_eye_distance, face_min_brightness.
func LoadRules(env *envconf.Env) (QualityRules, error) {
	r := QualityRules{}.withDefaults()
	r.MinEyeDistance = float64(env.Int("face_min_eye_distance", int(r.MinEyeDistance), 8, 400))
	r.MinBrightness = float64(env.Int("face_min_brightness", int(r.MinBrightness), 0, 200))
	return r, env.Err()
}

// Open wires the service of a function instance: the bundled model from the install
// step's files, photos and snapshots in the object store, masked answers from the person
// register, 1:N searches to the audit chain.
func Open(d *platform.Deps) (*Service, error) {
	if d.Postgres == nil || d.S3 == nil {
		return nil, errors.New("face-match needs Postgres and the object store")
	}
	env := d.Env
	if env == nil {
		env = envconf.New(nil)
	}
	match, err := LoadMatching(env)
	if err != nil {
		return nil, err
	}
	rules, err := LoadRules(env)
	if err != nil {
		return nil, err
	}
	model, err := LoadInstalled(rules)
	if err != nil {
		return nil, err
	}
	kr, err := pii.FromSecrets(d.Secrets, pii.PGStore{DB: d.Postgres})
	if err != nil {
		return nil, err
	}
	lib := &Library{Pool: d.Postgres, Snapshots: S3Snapshots{Client: d.S3}, Model: model.Name(), Dim: model.Dim(), Log: d.Log}
	// Load the 1:N library in the background as the instance starts, so the first search
	// does not pay for it (a snapshot loads in seconds; a build from 1M rows takes minutes).
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if _, err := lib.Fresh(ctx); err != nil && d.Log != nil {
			d.Log.Warn("face library not loaded at start; the first search retries", "err", err)
		}
	}()
	return &Service{Model: model, Pool: d.Postgres, Photos: S3Photos{Client: d.S3},
		People: MaskedPeople{Store: person.NewStore(d.Postgres, kr)}, Audit: d.Audit, Match: match, Lib: lib}, nil
}
