<?php
// darse: your PHP site with its own PostgreSQL. This page keeps notes in the
// database: POST a "note" to add one; every note is listed below. Replace
// it with your own code; the connection settings come from getenv().
$db = new PDO('pgsql:host=' . getenv('DB_HOST') . ';dbname=' . getenv('DB_NAME'), getenv('DB_USER'), getenv('DB_PASSWORD'),
    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$db->exec('CREATE TABLE IF NOT EXISTS notes (id SERIAL PRIMARY KEY, body VARCHAR(200) NOT NULL)');
if ($_SERVER['REQUEST_METHOD'] === 'POST' && isset($_POST['note'])) {
    $db->prepare('INSERT INTO notes (body) VALUES (?)')->execute([substr((string) $_POST['note'], 0, 200)]);
    header('Location: /', true, 303);
    exit;
}
$notes = $db->query('SELECT body FROM notes ORDER BY id')->fetchAll(PDO::FETCH_COLUMN);
?>
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your new PHP site with PostgreSQL</title></head>
<body>
<h1>Your PHP site with PostgreSQL is up</h1>
<p>PHP <?= htmlspecialchars(PHP_VERSION) ?>, PostgreSQL <?= htmlspecialchars($db->getAttribute(PDO::ATTR_SERVER_VERSION)) ?>. Replace <code>data/index.php</code> with your own code.</p>
<form method="post"><input name="note" maxlength="200"> <button>Add a note</button></form>
<ul>
<?php foreach ($notes as $n): ?>
<li class="note"><?= htmlspecialchars($n) ?></li>
<?php endforeach; ?>
</ul>
</body>
</html>
