#!/usr/bin/env bash
# Records real MariaDB 10.11 conversations (mariadb client, perl DBD::MariaDB with server-side
# prepared statements) in throwaway network namespaces, one pcap per conversation, then
# extracts each conversation's TCP payload into proto-parsers/src/mysql/testdata/<name>.bin
# (see ../sql_extract.py).
#
# Usage: sudo bash tests/data/mysql/record.sh        (needs tests/peers/packages/mysql.txt)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/mysql/testdata"
# shellcheck source=../../netns/lib.sh
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
PY=/usr/bin/python3

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 10.99.0.1/24
ns_addr srv eth0 10.99.0.2/24

mkdir -p "$T/db"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=db.shop \
    -keyout "$T/server.key" -out "$T/server.crt" 2>/dev/null
mariadb-install-db --no-defaults --user=root --datadir="$T/db" --auth-root-authentication-method=normal \
    >"$T/install.log" 2>&1
ns_spawn srv /usr/sbin/mariadbd --no-defaults --user=root --datadir="$T/db" \
    --socket="$T/sock" --pid-file="$T/pid" --bind-address=10.99.0.2 --port=3306 \
    --skip-name-resolve --ssl-cert="$T/server.crt" --ssl-key="$T/server.key"
ns_wait_tcp srv 10.99.0.2 3306 30 || { cat "$NS_LAST_LOG"; exit 1; }

ns_exec srv mariadb --no-defaults -S "$T/sock" -u root <<'SQL'
CREATE USER 'shop'@'%' IDENTIFIED BY 'secret';
CREATE DATABASE shop;
CREATE DATABASE archive;
GRANT ALL ON shop.* TO 'shop'@'%';
GRANT ALL ON archive.* TO 'shop'@'%';
USE shop;
CREATE TABLE orders (id INT PRIMARY KEY, item TEXT, qty INT);
CREATE TABLE order_items (order_id INT, sku TEXT);
CREATE TABLE customers (id INT, name TEXT);
INSERT INTO orders VALUES (1, 'mug', 2), (2, 'cup', 1);
INSERT INTO customers VALUES (1, 'ada');
CREATE TABLE archive.old_orders (id INT);
SQL
ns_settle cli srv

# rec NAME CMD...: capture one conversation run in cli.
rec() {
    local name=$1
    shift
    ns_capture srv eth0 "$HERE/$name.pcap" tcp
    ns_exec cli "$@" || true
    ns_wait_closed cli
    ns_capture_stop "$HERE/$name.pcap"
}

cat >"$T/session.sql" <<'SQL'
SELECT id, item FROM shop.orders WHERE id = 1;
SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id;
INSERT INTO order_items (order_id, sku) SELECT id, CONCAT('sku-', id) FROM orders;
UPDATE `orders` SET qty = qty + 1 WHERE id = 2;
SELECT * FROM no_such_table;
USE archive;
SELECT /*!40001 SQL_NO_CACHE */ id FROM old_orders # trailing comment
;
DELIMITER //
SELECT 1; SELECT item FROM shop.orders//
DELIMITER ;
PREPARE s FROM 'SELECT item FROM shop.orders WHERE id = ?';
SET @id = 1;
EXECUTE s USING @id;
DEALLOCATE PREPARE s;
SQL
rec my-client mariadb --no-defaults -h 10.99.0.2 -u shop -psecret --skip-ssl shop -f \
    -e "source $T/session.sql"
rec my-badpass mariadb --no-defaults -h 10.99.0.2 -u shop -pwrong --skip-ssl shop -e 'SELECT 1'
rec my-tls mariadb --no-defaults -h 10.99.0.2 -u shop -psecret --ssl --ssl-verify-server-cert=0 shop -e 'SELECT 1'
rec my-compress mariadb --no-defaults -h 10.99.0.2 -u shop -psecret --skip-ssl --compress shop -e 'SELECT item FROM orders'

cat >"$T/prep.pl" <<'PL'
use strict;
use DBI;
my $dbh = DBI->connect("DBI:MariaDB:database=shop;host=10.99.0.2;port=3306;mariadb_server_prepare=1;mariadb_ssl=0",
    "shop", "secret", { RaiseError => 0, PrintError => 0, AutoCommit => 1 });
my $sth = $dbh->prepare("SELECT item, qty FROM orders WHERE id = ?");
for my $id (1, 2) { $sth->execute($id); while (my @r = $sth->fetchrow_array) {} }
$sth->finish;
undef $sth;
my $upd = $dbh->prepare("UPDATE orders SET qty = ? WHERE id = ?");
$upd->execute(7, 1);
undef $upd;
my $bad = $dbh->prepare("SELECT * FROM missing_table WHERE id = ?");
$dbh->ping;
$dbh->disconnect;
PL
rec my-prepare perl "$T/prep.pl"

{
    date -u +"recorded: %Y-%m-%dT%H:%M:%SZ on $(uname -sr)"
    /usr/sbin/mariadbd --version
    mariadb --version
    perl -MDBD::MariaDB -e 'print "DBD::MariaDB $DBD::MariaDB::VERSION\n"'
    tcpdump --version 2>&1 | head -1
} >"$HERE/recorded-with.txt"

mkdir -p "$FIX"
for f in "$HERE"/*.pcap; do
    "$PY" "$HERE/../sql_extract.py" "$f" "$FIX"
done
