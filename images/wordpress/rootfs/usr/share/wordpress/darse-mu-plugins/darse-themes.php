<?php
/*
 * Plugin Name: darse image themes
 * Description: The themes shipped with the image (in WordPress's own wp-content), beside the member's in wp-content/themes.
 */
register_theme_directory(ABSPATH . 'wp-content/themes');
