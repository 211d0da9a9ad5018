package topology

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGeneratedDocsAreCurrent fails when the vocabulary changed and
// `make generate` was not run.
func TestGeneratedDocsAreCurrent(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "..", MarkdownDocPath))
	require.NoError(t, err)
	assert.Equal(t, string(RenderMarkdown()), string(md), "%s is stale: run make generate", MarkdownDocPath)

	want, err := RenderJSONLD()
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join("..", "..", JSONLDDocPath))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "%s is stale: run make generate", JSONLDDocPath)
}

func TestJSONLDContextDescribesEveryAttribute(t *testing.T) {
	raw, err := RenderJSONLD()
	require.NoError(t, err)
	var doc struct {
		Context map[string]json.RawMessage `json:"@context"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	for _, a := range Vocabulary {
		if strings.Contains(a.Key, "<") {
			continue
		}
		assert.Contains(t, doc.Context, a.Key)
	}
}

func TestVocabularyHasNoDuplicates(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Vocabulary {
		assert.False(t, seen[a.Key], "duplicate %s", a.Key)
		seen[a.Key] = true
		assert.NotEmpty(t, a.Description, a.Key)
	}
}
