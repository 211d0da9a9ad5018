package embedded // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// writeError names the failed operation and marks a full disk (SQLITE_FULL,
// also what SQLite answers on ENOSPC) as gpustore.ErrFull, which the
// exporter counts apart: an operator has to make room.
func writeError(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%s: %w: %w", op, gpustore.ErrFull, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
