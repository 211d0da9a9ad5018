// Command modernc is the smallest program that opens a database through
// database/sql and the modernc driver: its size minus the baseline's is the
// driver's cost in a binary.
package main

import (
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT 1").Scan(&n); err != nil {
		panic(err)
	}
	fmt.Println(n)
}
