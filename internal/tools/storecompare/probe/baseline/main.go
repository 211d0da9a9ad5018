// Command baseline links database/sql without any driver: the baseline of
// the binary size comparison.
package main

import (
	"database/sql"
	"fmt"
)

func main() {
	fmt.Println(sql.Drivers())
}
