<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your new PHP site</title></head>
<body>
<h1>Your PHP site is up</h1>
<p>PHP <?= htmlspecialchars(PHP_VERSION) ?> is running. Replace <code>data/index.php</code> with your own code.</p>
</body>
</html>
